"""Run one Soda Core v3 scan and print its outcome as JSON (run by the Soda venv's Python).

    python soda_scan.py CONFIGURATION.yml CHECKS.yml

Prints each check's outcome by name, the number of queries the scan sent and its exit code.
"""

from __future__ import annotations

import json
import sys

from soda.scan import Scan


def main() -> None:
    scan = Scan()
    scan.set_data_source_name("bench")
    scan.set_scan_definition_name("quality_bench")
    scan.add_configuration_yaml_file(sys.argv[1])
    scan.add_sodacl_yaml_file(sys.argv[2])
    code = scan.execute()
    found = scan.get_scan_results()
    answer = {
        "outcomes": {c["name"]: c["outcome"] for c in found["checks"]},
        "queries": len(scan._queries),  # statements sent, samples included
        "exit": code,
        "errors": [log["message"] for log in found["logs"] if log["level"] == "error"][:3],
    }
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
