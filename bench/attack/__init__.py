"""The attack run the project keeps (issue 16: "Nothing lost, nothing unbounded").

Hostile servers (:mod:`.hostile`), one child process per attack (:mod:`.child`) and the parent
that measures and judges it (:mod:`.harness`). ``python bench/attack_run.py`` prints the table;
``pytest -m attack`` asserts the verdicts (tests/attack/).
"""
