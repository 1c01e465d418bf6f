"""The dashboard's pages and actions, one module per part of the lifecycle."""
