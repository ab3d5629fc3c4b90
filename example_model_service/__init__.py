"""Example ML service for the drift monitor: a diamonds price model and an "expensive" classifier
behind FastAPI, reporting every prediction to the monitor with `monitor_service.client`."""
