"""Data contracts: one file per dataset, enforced on loads and on builds before publishing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gristmill.errors import ConfigError
from gristmill.workspace import Workspace

PEOPLE = "id,contact,score,joined\n1,a@x.io,10,2024-01-01\n2,,20,2024-01-02\n3,c@x.io,,2024-01-03\n4,bad,5,\n"
SOURCE = "kind: files\ntables:\n  people: {path: data/people.csv}\n"


def count(root: Path, sql: str) -> int:
    return int(Workspace(root).query(sql).column(0)[0].as_py())


def test_a_contract_on_a_load_quarantines_what_breaks_its_rules(
    make_project: Callable[..., Path], cli: object
) -> None:
    root = make_project(
        {
            "sources/crm.yml": SOURCE,
            "data/people.csv": PEOPLE,
            "contracts/raw.crm__people.yml": """
                owner: crm-team@example.com
                tags: [crm]
                on_violation: quarantine
                columns:
                  id: {type: BIGINT, nullable: false, unique: true}
                  contact: {type: VARCHAR, nullable: false, pii: email, checks: [{format: {as: email}}]}
                  score: {type: BIGINT}
                  joined: {type: DATE}
                checks:
                  - row_count: {min: 1}
            """,
        }
    )
    code, out = cli("run", project=root)  # type: ignore[operator]
    assert code == 0, out
    # Row 2 has no contact, row 4 a malformed one: both set aside, the other two published.
    assert count(root, "select count(*) from raw.crm__people") == 2
    assert count(root, "select count(*) from raw.crm__people__quarantine") == 2
    reasons = Workspace(root).query("select _gm_reason from raw.crm__people__quarantine order by 1")
    assert [r for r in reasons.column(0).to_pylist()] == ["format(contact as email)", "not_null(contact)"]
    assert "2 quarantined" in out
    # The contract's tags select the dataset.
    assert [a.name for a in Workspace(root).assets(["tag:crm"])] == ["raw.crm__people"]


def test_a_type_the_contract_does_not_allow_blocks_the_load(
    make_project: Callable[..., Path], cli: object
) -> None:
    contract = (
        "columns:\n  id: {type: BIGINT}\n  contact: VARCHAR\n  score: BIGINT\n  joined: DATE\nexact: true\n"
    )
    root = make_project(
        {"sources/crm.yml": SOURCE, "data/people.csv": PEOPLE, "contracts/raw.crm__people.yml": contract}
    )
    assert cli("run", project=root)[0] == 0  # type: ignore[operator]
    # Scores arrive as text and a column appears: the contract blocks, the old rows stay.
    (root / "data" / "people.csv").write_text("id,contact,score,joined,extra\n9,z@x.io,high,2024-02-01,1\n")
    code, out = cli("run", project=root)  # type: ignore[operator]
    assert code == 1
    assert "schema(id, contact, score, joined exactly) failed for 2 rows" in out
    assert "score" in out and "extra" in out
    assert count(root, "select count(*) from raw.crm__people") == 4


def test_on_schema_change_freeze_refuses_a_changed_source(
    make_project: Callable[..., Path], cli: object
) -> None:
    root = make_project(
        {
            "sources/crm.yml": SOURCE,
            "data/people.csv": PEOPLE,
            "contracts/people.yml": "dataset: raw.crm__people\non_schema_change: freeze\n",
        }
    )
    assert cli("run", project=root)[0] == 0  # type: ignore[operator]
    (root / "data" / "people.csv").write_text("id,contact,score,joined,extra\n5,e@x.io,1,2024-01-05,x\n")
    code, out = cli("run", project=root)  # type: ignore[operator]
    assert code == 1
    assert "contract freeze" in out
    assert count(root, "select count(*) from raw.crm__people") == 4


def test_a_contract_on_a_model_keeps_the_old_version_and_masks_personal_data(
    make_project: Callable[..., Path], cli: object
) -> None:
    root = make_project(
        {
            "sources/crm.yml": SOURCE,
            "data/people.csv": PEOPLE.replace("\n2,,20", "\n2,b@x.io,20"),
            "models/marts/people.sql": "select id, contact, score from raw.crm__people",
            "contracts/marts.people.yml": """
                owner: crm-team@example.com
                freshness: {column: joined, max_age: 1d}
                columns:
                  id: {nullable: false}
                  contact: {pii: email, checks: [{format: {as: email}, severity: warn}]}
            """,
        }
    )
    with pytest.raises(ConfigError, match='column "joined" does not exist'):
        Workspace(root).plan()
    contract = root / "contracts" / "marts.people.yml"
    contract.write_text(contract.read_text().replace("freshness: {column: joined, max_age: 1d}\n", ""))
    code, out = cli("run", project=root)  # type: ignore[operator]
    assert code == 0, out
    assert "format(contact as email) warns on 1 row" in out
    assert "bad" not in out and "***" in out  # contact is personal data: masked in the samples
    (root / "models" / "marts" / "people.sql").write_text(
        "select case when id = 1 then null else id end as id, contact, score from raw.crm__people"
    )
    code, out = cli("run", project=root)  # type: ignore[operator]
    assert code == 1
    assert "not_null(id) failed for 1 row" in out
    assert count(root, "select count(*) from marts.people where id is null") == 0


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("raw.crm__people.yml", "ownr: me\n", 'did you mean "owner"'),
        ("raw.crm__peeple.yml", "owner: me\n", 'did you mean "raw.crm__people"'),
        ("people.yml", "owner: me\n", "must be <schema>.<name>"),
        ("raw.crm__people.yml", "columns:\n  contact: {pii: emial}\n", 'did you mean "email"'),
        ("raw.crm__people.yml", "columns:\n  id: {nulable: false}\n", 'did you mean "nullable"'),
        ("raw.crm__people.yml", "on_schema_change: freese\n", 'did you mean "freeze"'),
        ("raw.crm__people.yml", "columns:\n  idd: {nullable: false}\n", 'column "idd" does not exist'),
    ],
)
def test_contract_errors_name_the_file(
    make_project: Callable[..., Path], name: str, text: str, message: str
) -> None:
    root = make_project({"sources/crm.yml": SOURCE, "data/people.csv": PEOPLE, f"contracts/{name}": text})
    with pytest.raises(ConfigError) as caught:
        Workspace(root).plan()
    assert message in str(caught.value) + str(caught.value.hint or "")
    assert str(caught.value.location).startswith(f"contracts/{name}")


def test_run_writes_a_report_with_failures_first_and_personal_data_masked(
    make_project: Callable[..., Path], cli: object, tmp_path: Path
) -> None:
    root = make_project(
        {
            "sources/crm.yml": SOURCE,
            "data/people.csv": PEOPLE.replace("4,bad,5,", "4,<script>x</script>,5,"),
            "contracts/raw.crm__people.yml": "columns:\n"
            "  contact: {pii: email, checks: [{format: {as: email}}]}\n"
            "  score: {checks: [{range: {min: 0}}]}\n",
        }
    )
    report = tmp_path / "run.html"
    code, _ = cli("run", "--report", str(report), project=root)  # type: ignore[operator]
    assert code == 1  # the malformed contact blocks the load
    page = report.read_text()
    assert "<script>x</script>" not in page and "x@" not in page
    assert page.index("format(contact as email)") < page.index("range(score &gt;= 0)")
