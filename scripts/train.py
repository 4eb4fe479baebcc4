"""Runner for `negdl-train`; the code and its arguments live in `neg_agents/cli/train.py`.

python scripts/train.py --help
"""

from neg_agents.cli.train import main

if __name__ == "__main__":
    main()
