"""Runner for `negdl-watch`; the code and its arguments live in `neg_agents/cli/watch.py`.

python scripts/watch.py --help
"""

from neg_agents.cli.watch import main

if __name__ == "__main__":
    main()
