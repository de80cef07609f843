"""Accounts: registration with an emailed activation code, passwords, login, roles."""
