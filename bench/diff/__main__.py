from bench.diff.run import main

main()
