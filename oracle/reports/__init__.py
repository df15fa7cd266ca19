"""Reports of checks (text, markdown, HTML, CSV, JSON) and safe printing of case text; no verdicts."""
