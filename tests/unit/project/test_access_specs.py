from __future__ import annotations

from pathlib import Path

import pytest

from gristmill.errors import ConfigError
from gristmill.project.access_specs import load_access

GOOD = """\
roles:
  analyst:
    members: [gmk_3f9a, "sub:alice@example.com", "group:finance"]
    grants:
      - {resource: "marts.*", privileges: [read]}
      - {resource: "metric:revenue", privileges: [run]}
    masks:
      - {class: pii.email, policy: hash, allow_aggregates: [count, count_distinct]}
      - {column: phone, policy: partial, keep_last: 4}
      - {column: iban, policy: sql, expr: "left({{ column }}, 4) || '****'"}
    row_filters:
      - {asset: marts.fct_invoice_line, where: "region = {{ principal.region }}"}
  admin:
    members: ["group:platform"]
    grants: [{resource: "marts.*", privileges: [admin]}]
"""


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "access.yml").write_text(text)
    return tmp_path


def test_a_full_policy_loads(tmp_path: Path) -> None:
    policy = load_access(_write(tmp_path, GOOD))
    assert policy is not None
    assert policy.roles_of(("sub:alice@example.com",)) == ("analyst",)
    assert policy.roles_of(("gmk_nobody", "group:platform")) == ("admin",)
    grant = policy.roles["analyst"].grants[0]
    assert grant.covers("marts.fct_invoice_line", "read") and not grant.covers("staging.x", "read")
    assert policy.roles["admin"].grants[0].covers("marts.x", "run")
    assert policy.roles["analyst"].row_filters[0].attributes == ("region",)


def test_absent_file_is_no_policy(tmp_path: Path) -> None:
    assert load_access(tmp_path) is None


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (GOOD.replace("policy: hash, allow", "policy: redact, allow"), 8, "count_distinct is exact only"),
        (GOOD.replace("keep_last: 4", "keep_lats: 4"), 9, "keep_lats"),
        (GOOD.replace('"group:finance"', '"team:finance"'), 3, "members"),
        (GOOD.replace("privileges: [run]", "privileges: [write]"), 6, "privileges"),
        (GOOD.replace('resource: "metric:revenue"', 'resource: "revenue"'), 6, "resource"),
        (GOOD.replace("{{ column }}, 4", "iban, 4"), 10, "{{ column }}"),
    ],
)
def test_errors_name_the_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_access(_write(tmp_path, text))
    assert f"access.yml:{line}" in str(caught.value.location) + str(caught.value)
    assert words in str(caught.value) + str(getattr(caught.value, "hint", ""))
