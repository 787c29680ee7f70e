from radflow.cli import main

raise SystemExit(main())
