from iovkit.cli.main import run

run()
