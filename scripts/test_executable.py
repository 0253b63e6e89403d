"""Prints the test executable cargo built for one target, from `cargo test --no-run
--message-format=json` on standard input: `test_executable.py <target name> <target kind>`."""
import json
import sys

name, kind = sys.argv[1], sys.argv[2]
found = []
for line in sys.stdin:
    try:
        message = json.loads(line)
    except ValueError:
        continue
    target = message.get("target", {})
    if (
        message.get("reason") == "compiler-artifact"
        and target.get("name") == name
        and kind in target.get("kind", [])
        and message.get("executable")
    ):
        found.append(message["executable"])
if len(found) != 1:
    sys.exit(f"expected one test executable of {kind} {name}, found {found}")
print(found[0])
