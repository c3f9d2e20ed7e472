"""Where listings come from: the batch data API client, its simulator and the file replay."""
