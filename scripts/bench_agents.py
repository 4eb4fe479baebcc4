"""Runner for `negdl-bench`; the code and its arguments live in `neg_agents/cli/bench.py`.

python scripts/bench_agents.py --help
"""

from neg_agents.cli.bench import main

if __name__ == "__main__":
    main()
