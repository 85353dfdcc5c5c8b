"""Analysis of records: Spearman correlations (Table 1), the paper's tables, plots and the paper's own figures."""
