"""The OpenSVC config grammar, as data (``*.lark`` files beside this module)."""
