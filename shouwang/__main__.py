from shouwang.cli import main

main()
