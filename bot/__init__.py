"""The Baton application: configuration, the aiohttp server, the command line, scheduling and delivery."""
