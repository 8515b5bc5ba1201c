"""Reads for criteria-drift review (the review page, meeting mode and the API), by concern:
`targets` (what is reviewed, rating matrices), `agreement_tables`, `timeline`, `agenda`,
`meetings`, `output_review`, and `notes` (criteria proposed from notes, pure text mining)."""
