#!/usr/bin/env python3
"""How FinColl follows newly validated checkpoints: long-poll the feed, load, report back.

Standard library only. Usage:
    CAELUM_URL=http://localhost:3000 CAELUM_TOKEN=... python3 examples/fincoll/poll_feed.py llm1-tech
CAELUM_TOKEN is FinColl's own token, with the report-loads scope only: it reads the feed and
reports loads, and can do nothing else (make one with `caelum-scheduler token new --name fincoll
--scope report-loads`; CAELUM_TOKEN_FILE names a file holding it instead).
The cursor is kept in a file (under .caelum/, the demo's data folder, or $CAELUM_DATA_DIR;
$CURSOR_FILE names another), so a restart resumes where it left off and never misses one.
"""
import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

BASE = os.environ.get("CAELUM_URL", "http://localhost:3000")


def secret(name):
    """The variable, or the contents of the file <name>_FILE names (Docker and Kubernetes secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        with open(path) as f:
            return f.read().rstrip("\r\n")
    value = os.environ.get(name)
    if not value:
        sys.exit(f"set {name} (or {name}_FILE) to FinColl's token (scope report-loads)")
    return value


TOKEN = secret("CAELUM_TOKEN")
MODEL = sys.argv[1] if len(sys.argv) > 1 else "llm1-tech"
INSTANCE = os.environ.get("FINCOLL_INSTANCE", "fincoll-1")
# An empty variable counts as unset, as it does for caelum-scheduler.
DATA_DIR = os.environ.get("CAELUM_DATA_DIR") or ".caelum"
CURSOR_FILE = os.environ.get("CURSOR_FILE", os.path.join(DATA_DIR, f"fincoll-cursor-{MODEL}"))


def call(method, path, token, body=None, timeout=40):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as res:
        return json.load(res)


def file_mismatch(entry):
    """Why the file is not the one that was validated (size or sha256 differ, or it is unreadable), or None."""
    try:
        size = os.path.getsize(entry["path"])
        digest = hashlib.sha256()
        with open(entry["path"], "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as err:
        return f"cannot read it: {err}"
    if size != entry["sizeBytes"]:
        return f"its size is {size}, the feed says {entry['sizeBytes']}"
    if digest.hexdigest() != entry["sha256"]:
        return f"its sha256 is {digest.hexdigest()}, the feed says {entry['sha256']}"
    return None


def load_checkpoint(entry):
    """Loads a validated checkpoint, or refuses it (False) when its file is not the one validated."""
    mismatch = file_mismatch(entry)
    if mismatch:
        print(f"refusing {entry['label']} ({entry['path']}): {mismatch}", file=sys.stderr, flush=True)
        return False
    # validatedAt says how fresh it is: a feed that has been away a while replays old ones.
    validated = datetime.fromisoformat(entry["validatedAt"].replace("Z", "+00:00"))
    age = (datetime.now(timezone.utc) - validated).total_seconds()
    # FinColl would load the weights here.
    print(f"loading {entry['label']} from {entry['path']} (validated {age:.0f} s ago, sha256 {entry['sha256'][:12]}…)", flush=True)
    return True


def main():
    cursor = open(CURSOR_FILE).read().strip() if os.path.exists(CURSOR_FILE) else "0"
    while True:
        try:
            page = call("GET", f"/api/checkpoints/feed?model={MODEL}&after={cursor}&wait=30", TOKEN)
        except (urllib.error.URLError, TimeoutError) as err:
            print(f"feed unavailable ({err}); retrying in 5 s", file=sys.stderr, flush=True)
            time.sleep(5)
            continue
        for entry in page["checkpoints"]:
            if load_checkpoint(entry):
                call("POST", f"/api/checkpoints/{entry['id']}/loaded", TOKEN, {"instance": INSTANCE})
        cursor = page["cursor"]
        os.makedirs(os.path.dirname(CURSOR_FILE) or ".", exist_ok=True)
        with open(CURSOR_FILE, "w") as f:
            f.write(cursor)


if __name__ == "__main__":
    main()
