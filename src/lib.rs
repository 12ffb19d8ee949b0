pub mod decode;
pub mod domain;
