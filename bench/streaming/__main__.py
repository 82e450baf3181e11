from bench.streaming.run import main

main()
