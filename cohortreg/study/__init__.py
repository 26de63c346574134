"""The cohort's tables, paired statistics, method choice, domain shift and the report's figures."""
