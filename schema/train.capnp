# placeholder
@0x9e744ab708f22078;
