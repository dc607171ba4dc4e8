"""BSS rating: pure pricing of usage records (voice, data, SMS) by tariff plan, with exact money.

Nothing here does I/O. The rating consumer looks up the account's plan and remaining allowance,
calls `engine.rate`, and stores the result and the new allowance balance itself.
"""
