"""Reports for people: what to show (view), the coordinator's worklist, and the HTML report."""
