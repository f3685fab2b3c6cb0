from kira.serve.cli import app

app()
