"""Report: everything a reader sees.

Swedish labels, number formats, printed table layouts, figures (the only place
matplotlib is imported), the HTML report and the workbook.
"""
