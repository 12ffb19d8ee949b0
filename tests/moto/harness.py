#!/usr/bin/env python3
"""A fake AWS for the exporter's tests: moto's server, plus what moto lacks.

Runs moto's ThreadedMotoServer on 127.0.0.1, port 0, in this process, and a
small forwarding proxy in front of it that can answer with injected throttling
or 5xx errors and counts the CodeDeploy/SQS calls it forwards. Prints one JSON
line:

    {"endpoint": "http://127.0.0.1:PORT", "proxy": "http://127.0.0.1:PORT2"}

then answers JSON-line commands on stdin, one JSON line each ({"ok": true, ...}
or {"ok": false, "error": "..."}). It exits when stdin closes, so a test that
panics or is killed leaves no server behind.

moto keeps CodeDeploy deployments `Created` forever, hard-codes rollbackInfo and
errorInformation to `{}` and has no deployment-target operations. The commands
below move a deployment through moto's own in-process backend, and patches fill
the gaps (ListDeploymentTargets, BatchGetDeploymentTargets, rollbackInfo,
errorInformation); moto still serves every call.

Commands (`cmd` names the command; `account` defaults to 123456789012 and
`region` to us-east-1; times are epoch seconds):
  add_deployment  {app, group, platform?, id?, status?, creator?, create_time?,
                   start_time?, complete_time?, overview?, rollback_info?,
                   error_information?, deployment_type?, revision?, description?,
                   deployment_config?}   deployment_config names the deployment's
                   configuration (moto's default: the group's, CodeDeployDefault.OneAtATime)
                   -> {"id": ...}   revision is a RevisionLocation as the API has it
  set_deployment  {id, the same optional fields}
  set_targets     {id, targets: [{targetId, status, type?, lifecycleEvents?}]}
  inject          {op, kind: "throttle" | "5xx", count}  op is an X-Amz-Target
                   operation name such as "BatchGetDeployments", or "*"
                   (CodeDeploy), or "GetCallerIdentity" (STS)
  counts          {} -> {"counts": {"codedeploy.ListDeployments": n, ...},
                         "terminal_fetches": {deployment id: BatchGetDeployments
                         calls that asked for it while it was finished}}
  reset_counts    {}
"""

import datetime
import http.client
import json
import logging
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from moto.codedeploy import responses as cd_responses
from moto.codedeploy.models import codedeploy_backends
from moto.core.responses import ActionResult
from moto.server import ThreadedMotoServer

DEFAULT_ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"

LOCK = threading.Lock()
# (account, region, deployment id) -> extra fields moto does not keep
EXTRA = {}
# (account, region, deployment id) -> [DeploymentTarget as the API returns it]
TARGETS = {}
# operation name or "*" -> [kind, remaining]
INJECTIONS = {}
COUNTS = {}
# deployment id -> times BatchGetDeployments asked for it while it was finished
TERMINAL_FETCHES = {}


# --- patches: what moto lacks -------------------------------------------------

_original_deployment_info = cd_responses._deployment_info


def _deployment_info(deployment):
    info = _original_deployment_info(deployment)
    extra = EXTRA.get(getattr(deployment, "_harness_key", None), {})
    for key in ("rollbackInfo", "errorInformation"):
        if key in extra:
            info[key] = extra[key]
    if "deploymentStyle" in extra:
        info["deploymentStyle"] = extra["deploymentStyle"]
    return info


cd_responses._deployment_info = _deployment_info


def _targets_of(response, deployment_id):
    return TARGETS.get((response.current_account, response.region, deployment_id), [])


def list_deployment_targets(self):
    deployment_id = self._get_param("deploymentId")
    ids = [t["targetId"] for t in _targets_of(self, deployment_id)]
    return ActionResult({"targetIds": ids})


def batch_get_deployment_targets(self):
    deployment_id = self._get_param("deploymentId")
    wanted = set(self._get_param("targetIds") or [])
    found = []
    for target in _targets_of(self, deployment_id):
        if target["targetId"] in wanted:
            member = {
                "InstanceTarget": "instanceTarget",
                "LambdaTarget": "lambdaTarget",
                "ECSTarget": "ecsTarget",
                "CloudFormationTarget": "cloudFormationTarget",
            }[target["deploymentTargetType"]]
            found.append({"deploymentTargetType": target["deploymentTargetType"], member: target["body"]})
    return ActionResult({"deploymentTargets": found})


cd_responses.CodeDeployResponse.list_deployment_targets = list_deployment_targets
cd_responses.CodeDeployResponse.batch_get_deployment_targets = batch_get_deployment_targets


# --- commands -------------------------------------------------------------------


def _time(seconds):
    if seconds is None:
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).replace(tzinfo=None)


def _backend(cmd):
    return codedeploy_backends[cmd.get("account", DEFAULT_ACCOUNT)][cmd.get("region", DEFAULT_REGION)]


def _key(cmd, deployment_id):
    return (cmd.get("account", DEFAULT_ACCOUNT), cmd.get("region", DEFAULT_REGION), deployment_id)


def _apply(cmd, deployment):
    if "status" in cmd:
        deployment.status = cmd["status"]
    if "creator" in cmd:
        deployment.creator = cmd["creator"]
    for field, attr in (("create_time", "create_time"), ("start_time", "start_time"), ("complete_time", "complete_time")):
        if field in cmd:
            setattr(deployment, attr, _time(cmd[field]))
    if "overview" in cmd:
        overview = {"Pending": 0, "InProgress": 0, "Succeeded": 0, "Failed": 0, "Skipped": 0, "Ready": 0}
        overview.update(cmd["overview"])
        deployment.deployment_overview = overview
    extra = EXTRA.setdefault(deployment._harness_key, {})
    if "rollback_info" in cmd:
        extra["rollbackInfo"] = cmd["rollback_info"]
    if "error_information" in cmd:
        extra["errorInformation"] = cmd["error_information"]
    if "deployment_type" in cmd:
        extra["deploymentStyle"] = {"deploymentType": cmd["deployment_type"], "deploymentOption": "WITHOUT_TRAFFIC_CONTROL"}


def add_deployment(cmd):
    backend = _backend(cmd)
    app, group = cmd["app"], cmd["group"]
    if app not in backend.applications:
        backend.create_application(app, cmd.get("platform", "Server"), [])
    if group not in backend.deployment_groups.get(app, {}):
        backend.create_deployment_group(
            app, group, None, None, None, None, f"arn:aws:iam::{cmd.get('account', DEFAULT_ACCOUNT)}:role/cd"
        )
    revision = cmd.get("revision", {"revisionType": "S3"})
    generated = backend.create_deployment(app, group, revision, cmd.get("deployment_config"), cmd.get("description"))
    deployment = backend.deployments.pop(generated)
    deployment_id = cmd.get("id") or generated
    deployment.deployment_id = deployment_id
    backend.deployments[deployment_id] = deployment
    deployment._harness_key = _key(cmd, deployment_id)
    _apply(cmd, deployment)
    return {"id": deployment_id}


def set_deployment(cmd):
    deployment = _backend(cmd).deployments[cmd["id"]]
    _apply(cmd, deployment)
    return {}


def set_targets(cmd):
    targets = []
    for target in cmd["targets"]:
        kind = target.get("type", "InstanceTarget")
        body = {
            "deploymentId": cmd["id"],
            "targetId": target["targetId"],
            "status": target["status"],
            "lifecycleEvents": target.get("lifecycleEvents", []),
        }
        targets.append({"deploymentTargetType": kind, "targetId": target["targetId"], "body": body})
    TARGETS[_key(cmd, cmd["id"])] = targets
    return {}


def inject(cmd):
    INJECTIONS[cmd.get("op", "*")] = [cmd["kind"], int(cmd.get("count", 1))]
    return {}


def counts(_cmd):
    return {"counts": dict(COUNTS), "terminal_fetches": dict(TERMINAL_FETCHES)}


def reset_counts(_cmd):
    COUNTS.clear()
    TERMINAL_FETCHES.clear()
    return {}


COMMANDS = {
    "add_deployment": add_deployment,
    "set_deployment": set_deployment,
    "set_targets": set_targets,
    "inject": inject,
    "counts": counts,
    "reset_counts": reset_counts,
}


# --- the fault-injecting proxy --------------------------------------------------


def _operation(headers, body):
    target = headers.get("X-Amz-Target", "")
    if "." not in target:
        # STS speaks the query protocol: the action is a form field.
        action = urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action", [None])[0]
        return ("sts", action) if action == "GetCallerIdentity" else (None, None)
    prefix, op = target.rsplit(".", 1)
    service = {"CodeDeploy_20141006": "codedeploy", "AmazonSQS": "sqs", "AWSEvents": "events"}.get(prefix, prefix)
    return service, op


def _count_terminal_fetches(body):
    try:
        ids = json.loads(body or b"{}").get("deploymentIds") or []
    except ValueError:
        return
    for deployment_id in ids:
        for regions in list(codedeploy_backends.values()):
            for backend in list(regions.values()):
                deployment = backend.deployments.get(deployment_id)
                if deployment is not None and deployment.status in ("Succeeded", "Failed", "Stopped"):
                    TERMINAL_FETCHES[deployment_id] = TERMINAL_FETCHES.get(deployment_id, 0) + 1


def make_proxy(upstream_port):
    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _forward(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            service, op = _operation(self.headers, body)
            fault = None
            with LOCK:
                if op is not None:
                    COUNTS[f"{service}.{op}"] = COUNTS.get(f"{service}.{op}", 0) + 1
                for key in (op, "*"):
                    entry = INJECTIONS.get(key)
                    if entry and entry[1] > 0 and (service == "codedeploy" or op == key == "GetCallerIdentity"):
                        entry[1] -= 1
                        fault = entry[0]
                        break
                if fault is None and service == "codedeploy" and op == "BatchGetDeployments":
                    _count_terminal_fetches(body)
            if fault == "throttle":
                return self._answer(400, {"__type": "ThrottlingException", "message": "Rate exceeded"},
                                    {"x-amzn-ErrorType": "ThrottlingException"})
            if fault == "5xx":
                return self._answer(503, {"__type": "ServiceUnavailableException", "message": "injected"}, {})
            connection = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            connection.close()
            self.close_connection = True

        def _answer(self, status, payload, headers):
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True

        do_POST = _forward
        do_GET = _forward
        do_PUT = _forward
        do_DELETE = _forward

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    proxy = make_proxy(port)
    print(json.dumps({"endpoint": f"http://{host}:{port}", "proxy": f"http://127.0.0.1:{proxy.server_address[1]}"}), flush=True)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            cmd = json.loads(line)
            with LOCK:
                answer = COMMANDS[cmd["cmd"]](cmd)
            answer["ok"] = True
        except Exception as error:  # report, keep serving
            answer = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        print(json.dumps(answer), flush=True)
    # stdin closed: the test is over (or died); stop without waiting for threads.
    proxy.shutdown()
    import os

    os._exit(0)


if __name__ == "__main__":
    main()
