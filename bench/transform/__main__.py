from bench.transform.run import main

main()
