# placeholder, replaced by the frame parser
