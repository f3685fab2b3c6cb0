from kira.cli import main

main()
