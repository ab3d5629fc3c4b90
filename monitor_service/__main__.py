from monitor_service.cli import main

raise SystemExit(main())
