"""The Streamlit viewer: `streamlit run dashboard/app.py` (or `make dashboard`)."""
