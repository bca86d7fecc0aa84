from tests.fuzz import budget

budget.load()
