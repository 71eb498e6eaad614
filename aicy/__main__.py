from aicy.cli import main

main()
