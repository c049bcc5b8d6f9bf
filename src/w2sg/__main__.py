from w2sg.cli import entry

entry()
