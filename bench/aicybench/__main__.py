from aicybench.run import main

main()
