from gristmill.cli.app import main

main()
