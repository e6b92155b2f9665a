"""edgekit cloud side: the feature collector, the cloud segment, and the attacks and their scores."""
