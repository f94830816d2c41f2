from codeact.cli import main

main()
