from newsstream.cli.main import main

main()
