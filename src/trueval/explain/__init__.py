"""Looking inside a trained classifier: Grad-CAM maps, a t-SNE of penultimate features, and the
most-confused class pairs with example images (``callbacks=explain`` draws them after testing)."""
