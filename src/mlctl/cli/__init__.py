"""The command line (floor 11): click wiring only. Each ``cli/<name>_cmd.py`` declares one command (or
group) as ``command``, parses its options, calls one operation of :mod:`mlctl.operations` (or a
read-only core function) and renders the result; ``cli/main.py`` is the root group, which
imports those modules lazily, so ``mlctl --help`` imports no pandas, scikit-learn, FastAPI or
boto3. Every invocation runs inside the one error boundary (:mod:`mlctl.cli.boundary`)."""
