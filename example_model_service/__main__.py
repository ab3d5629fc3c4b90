import sys

from example_model_service.cli import main

sys.exit(main())
