from newsstream.cli.main import app

app()
