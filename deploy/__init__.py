"""Deploy tooling for Slipway itself (`make package`, `make deploy`): never shipped to Lambda."""
