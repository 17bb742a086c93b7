from newsstream.cli import app

app()
