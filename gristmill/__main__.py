from gristmill.cli.entry import main

main()
