"""Platform adapters. Each only translates between its platform and `dialogs.engine.messages`."""
