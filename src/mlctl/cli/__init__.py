"""The command line: click wiring only. Each ``cli/<command>.py`` parses nothing and renders
what a core function returns; ``cli/main.py`` declares the commands and imports those modules
lazily, so ``mlctl --help`` imports no pandas, scikit-learn, FastAPI or boto3."""
