"""Function sizes other code reads without loading the CDK (the bench compares measured peak
memory with them)."""

# A 1,000,000-row snapshot with its derived columns takes a few hundred MB (README "Replica");
# memory also buys CPU on Lambda, which columnar work uses.
ANALYTICS_MEMORY_MB = 3008
