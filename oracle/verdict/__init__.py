"""The verdict core: the only code that decides whether a value passes.

yamlsafe.py  safe YAML with positions and printed decimals
limits.py    the limits on what a case file may ask for
errors.py    CaseError (file:line:col: message), EngineError
expr.py      the expression language (recursive descent, no eval)
cases.py     case loading and validation
run.py       runs a case on one engine
engines.py   the engines compared and their tolerances
compare.py   tolerances and verdicts: match / erratum / mismatch
"""
