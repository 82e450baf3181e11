from bench.orchestration.run import main

main()
